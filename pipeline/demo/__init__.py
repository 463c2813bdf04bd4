"""The simulated demo study and example exports in every layout a clinic may hold."""
