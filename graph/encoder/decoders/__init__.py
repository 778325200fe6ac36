"""KGE decoders, one module each (PyG style): DistMult, ComplEx, RotatE."""

from graph.encoder.decoders.base import Decoder, halves
from graph.encoder.decoders.complex import ComplEx
from graph.encoder.decoders.distmult import DistMult
from graph.encoder.decoders.rotate import RotatE

DECODERS = ("distmult", "complex", "rotate")


def make_decoder(name: str, gamma: float = 6.0) -> Decoder:
    if name == "distmult":
        return DistMult()
    if name == "complex":
        return ComplEx()
    if name == "rotate":
        return RotatE(gamma=gamma)
    raise ValueError(f"unknown decoder {name!r}; choose one of {', '.join(DECODERS)}")


__all__ = ["DECODERS", "ComplEx", "Decoder", "DistMult", "RotatE", "halves", "make_decoder"]
