//! Producer-side storage (checkin); filled in by the producer portal work.
