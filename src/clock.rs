//! The default clock.

/// Seconds since the Unix epoch from the system clock (0 if the clock is
/// before 1970). Every call that reads it has an `_at` / `_with_rng` form
/// taking the time explicitly.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
