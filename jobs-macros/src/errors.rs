//! The error accumulator: parsing and checking record every mistake here
//! instead of stopping at the first, so a user sees all of them at once.

use proc_macro2::TokenStream;

/// Errors gathered while parsing and checking one attribute.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// Records an error; all of them are reported together.
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// The `compile_error!` invocations for every recorded error, or `None`
    /// when there is none.
    pub fn into_tokens(self) -> Option<TokenStream> {
        self.0.map(|e| e.to_compile_error())
    }
}
