"""The summary of an ingest: what happened to each file, as a line of text or as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    worker_writes: int = 0  # passages the Ray workers wrote into a server store themselves
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.removed)} removed",
            f"{len(self.skipped)} skipped",
        ]
        line = ", ".join(parts) + f"; {self.chunks_embedded} passages embedded"
        if self.chunks_reused:
            line += f", {self.chunks_reused} reused"
        if self.worker_writes:
            line += f" ({self.worker_writes} written by the Ray workers)"
        if not self.added and not self.updated and not self.removed and not self.renamed:
            line += " (nothing changed)"
        return line + f" in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "renamed": self.renamed,
            "removed": self.removed,
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
            "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused,
            "worker_writes": self.worker_writes,
            "seconds": round(self.seconds, 3),
        }
