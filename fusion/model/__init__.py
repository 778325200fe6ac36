"""What the models are made of: the fusion model and its training configuration (stored with
each version), the action space of a domain and the in-memory domain graph (``graphdata``)."""
