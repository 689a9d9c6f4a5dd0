"""BALI pretraining: batches, the loop, torch and DeepSpeed backends, export."""
