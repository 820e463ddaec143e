//! The one source of randomness: the operating system's, through `getrandom`, for everything
//! that must not be guessed (tokens, nonces) or must not repeat in step (jitter); and a small
//! seeded generator for what must be reproducible (the simulator's made-up ids, test seeds).

/// Fills `buffer` from the OS. `false` when the OS has no randomness to give (never seen on the
/// platforms ringside runs on; callers that need secrecy fail, the others degrade).
pub fn fill(buffer: &mut [u8]) -> bool {
    getrandom::fill(buffer).is_ok()
}

/// `bytes` random bytes from the OS, hex-encoded (a generated token).
pub fn hex(bytes: usize) -> Option<String> {
    let mut buffer = vec![0u8; bytes];
    fill(&mut buffer).then(|| hex_of(&buffer))
}

/// Lower-case hex of `bytes`.
pub fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// A number in `[0, 1]` from the OS, or `0.5` without randomness (jitter only).
pub fn fraction() -> f64 {
    let mut bytes = [0u8; 2];
    if fill(&mut bytes) {
        f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX)
    } else {
        0.5
    }
}

/// SplitMix64: small, seedable and reproducible; for made-up ids, delays and test inputs, never
/// for secrets.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..bound` for ids and delays (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hex_of_the_asked_length_and_differ() {
        let a = hex(16).unwrap();
        let b = hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(hex_of(&[0, 255, 16]), "00ff10");
    }

    #[test]
    fn the_seeded_generator_repeats_for_a_seed() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(
            (0..5).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..5).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        assert!(SplitMix64::new(1).below(10) < 10);
    }
}
