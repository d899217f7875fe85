//! Every variant of a fieldless enum as a fixed-size array: strum's `VariantArray`
//! lists them as a slice, and the enums' `ALL` constants are arrays (so they iterate
//! by value and size counter arrays).

/// The first `N` of `variants`; `N` must be their number (checked at compile time
/// where the constant is defined).
pub(crate) const fn array<T: Copy, const N: usize>(variants: &[T]) -> [T; N] {
    assert!(variants.len() == N, "N must be the number of variants");
    match variants.first_chunk() {
        Some(all) => *all,
        None => unreachable!(),
    }
}
