"""Planning the next study: power, sample size, detectable effect and precision (SAP §4b)."""
