//! What the PDF and email workers read and record (fulfilment of paid orders).
