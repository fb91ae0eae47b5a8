//! Producer-side storage (subscribers); filled in by the producer portal work.
