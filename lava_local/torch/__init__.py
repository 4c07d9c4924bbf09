"""Batched trainers (torch, CPU or GPU): S-TLLR and the BPTT baseline, with accounting."""
