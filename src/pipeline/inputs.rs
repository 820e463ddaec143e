//! Inputs that do not come from the inbox: reconciliation snapshots, a session gone, kick
//! intents and failures. Whoever produces them holds a [`DetectorInputs`].

use crate::conference::Input;
use tokio::sync::{mpsc, oneshot};

/// An input and, when asked for, the answer once the detector has taken it.
pub struct Directed {
    pub input: Input,
    pub applied: Option<oneshot::Sender<()>>,
}

/// The handle other parts use to feed the detector.
#[derive(Clone)]
pub struct DetectorInputs {
    sender: mpsc::UnboundedSender<Directed>,
}

impl DetectorInputs {
    /// A handle and the receiving end the pipeline task reads.
    pub fn channel() -> (DetectorInputs, mpsc::UnboundedReceiver<Directed>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (DetectorInputs { sender }, receiver)
    }

    /// Queues an input without waiting.
    pub fn send(&self, input: Input) {
        let _ = self.sender.send(Directed {
            input,
            applied: None,
        });
    }

    /// Queues an input and waits until the detector has applied it (`false` if it is gone).
    pub async fn apply(&self, input: Input) -> bool {
        let (applied, done) = oneshot::channel();
        if self
            .sender
            .send(Directed {
                input,
                applied: Some(applied),
            })
            .is_err()
        {
            return false;
        }
        done.await.is_ok()
    }
}
