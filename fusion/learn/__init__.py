"""Training and measuring the fusion QA model: generated questions, the training loop,
evaluation, training curves and statistics. Serving imports nothing from here."""
