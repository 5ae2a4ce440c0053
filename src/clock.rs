//! The default clock.

/// Seconds since the Unix epoch from the system clock (0 if the clock is
/// before 1970). Every call that reads it has an `_at` / `_with_rng` form
/// taking the time explicitly.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the Unix epoch from JavaScript's `Date.now()`:
/// `std::time::SystemTime::now()` traps on `wasm32-unknown-unknown`.
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "wasm_js"))]
pub(crate) fn now_secs() -> u64 {
    let millis = js_sys::Date::now();
    if millis.is_finite() && millis > 0.0 {
        // Whole seconds: the float has 53 bits, plenty for milliseconds.
        (millis / 1000.0) as u64
    } else {
        0
    }
}

/// Without the `wasm_js` feature there is no clock on
/// `wasm32-unknown-unknown`: the calls without an explicit time see 0 (so
/// share keys look new and rotations by age never trigger). Use the `_at` /
/// `_with_rng` forms there, or enable `wasm_js`.
#[cfg(all(
    target_arch = "wasm32",
    target_os = "unknown",
    not(feature = "wasm_js")
))]
pub(crate) fn now_secs() -> u64 {
    0
}
