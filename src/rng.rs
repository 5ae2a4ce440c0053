//! The default randomness source.

use getrandom::SysRng;
use rand_core::UnwrapErr;

/// The operating system's CSPRNG, used by every function without `_with_rng`.
///
/// A failing OS RNG is not something a cryptographic library can work
/// around; like `rand`'s `OsRng`, this aborts the operation with a panic in
/// that (practically unreachable) case rather than produce weak keys.
pub(crate) fn os_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}
