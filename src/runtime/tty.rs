//! Pseudo-terminals and the host terminal. (Stub: being written.)
