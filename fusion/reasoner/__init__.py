"""A learned multi-hop reasoner: reads a question into a distribution over relation paths.

What the fine-tuned QA model of a domain is when trained on a user's labelled questions (or on
generated ones). It learns from question-answer pairs alone: no hop count, no entity types and
no word rules are given to it.

- ``model``: ``PathReasoner``, MiniLM whose top layers are fine-tuned, with TransferNet-style
  heads (Shi et al., 2021): one attention over the question's tokens per step, each step's
  distribution over the domain's hops ``(relation, direction)``, a distribution over the hop
  count, and one over the answer type. A path's probability is the product of its parts.
- ``supervision``: which relation paths from a row's topic reach its answers (every path of
  up to ``max_hops`` hops, weighted by the overlap of what it reaches with the answers), and
  why a row could not be used.
- ``learn``: training by the marginal likelihood of the paths that reach the answers (the
  path is latent, as the entity transfer is in TransferNet), with early stopping on
  validation Hits@1 measured by executing the model's paths on the graph.
- ``serve``: the trained model as a ``fusion.serve.retrieval.Scorer``, so the bounded beam search
  over Neo4j executes its paths and returns answers with their evidence.
- ``checkpoint``: a version folder (safetensors + config) of the QA artifact store.
"""
