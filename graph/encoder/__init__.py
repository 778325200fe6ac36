"""Graph encoder: PyG-based knowledge-graph embeddings of the domain graphs.

Public contract (used by the API, the CLI and the fusion model):

- ``KGData`` (``uids``, ``relation_types``, ``edge_index: [2, E]``, ``edge_type: [E]``) and
  ``export_domains(driver, database, domains, batch_size)``;
- ``EncoderConfig``, ``train_encoder(data, config) -> TrainResult`` and
  ``train_domain(settings, driver, domain, config, progress) -> version``;
- ``load_active_encoder(settings, domain) -> EncoderBundle`` (``version``,
  ``entity_embeddings: [N, d]``, ``relation_embeddings: [R, d']``, ``uid_to_index``,
  ``relation_types``); ``ModelNotReadyError`` when no version is active.
"""

from graph.encoder.checkpoint import (
    EncoderBundle,
    encoder_artifacts,
    load_active_encoder,
    load_checkpoint,
    save_checkpoint,
)
from graph.encoder.config import EncoderConfig
from graph.encoder.data import KGData, export_domains
from graph.encoder.evaluate import FilterIndex, Metrics, evaluate, rank_metrics, realistic_ranks
from graph.encoder.model import KGEncoder
from graph.encoder.pipeline import train_domain
from graph.encoder.train import Splits, TrainResult, split_triples, train_encoder

__all__ = [
    "EncoderBundle", "EncoderConfig", "FilterIndex", "KGData", "KGEncoder", "Metrics", "Splits",
    "TrainResult", "encoder_artifacts", "evaluate", "export_domains", "load_active_encoder",
    "load_checkpoint", "rank_metrics", "realistic_ranks", "save_checkpoint", "split_triples",
    "train_domain", "train_encoder",
]
