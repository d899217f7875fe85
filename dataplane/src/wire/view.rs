//! What every view has: the struct over its buffer, the two constructors and the way
//! back to the bytes. The fields are each view's own.

/// Declares view `$name` over `$what`, which `new_checked` requires `$min_len` bytes
/// of; `then` names a further check of the view (`fn(&Self) -> Result<(), ShortBuffer>`).
macro_rules! view {
    (
        $(#[$attr:meta])*
        $name:ident: $what:literal, $min_len:expr $(, then $check:path)?
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            #[doc = concat!("A view of ", $what, " whose length the caller has checked.")]
            #[inline(always)]
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            #[doc = concat!("A view, or why `buffer` cannot hold ", $what, ".")]
            #[inline(always)]
            pub fn new_checked(buffer: T) -> Result<Self, $crate::wire::ShortBuffer> {
                $crate::wire::check_len($what, buffer.as_ref(), $min_len)?;
                let view = Self::new_unchecked(buffer);
                $($check(&view)?;)?
                Ok(view)
            }

            /// The buffer, given back.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }

        impl<T: AsRef<[u8]>> AsRef<[u8]> for $name<T> {
            fn as_ref(&self) -> &[u8] {
                self.buffer.as_ref()
            }
        }
    };
}
