"""An in-memory nearest-neighbour store standing in for a vector database."""
import math


class EmbeddingStore:
    def __init__(self):
        self._vectors: dict[str, list[float]] = {}

    def add(self, key: str, vector: list[float]) -> None:
        self._vectors[key] = vector

    def nearest(self, vector: list[float]) -> str | None:
        def distance(other: list[float]) -> float:
            return math.sqrt(sum((a - b) ** 2 for a, b in zip(vector, other)))

        return min(self._vectors, key=lambda k: distance(self._vectors[k]), default=None)
