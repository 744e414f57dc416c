//! Pure checkers over a History.
