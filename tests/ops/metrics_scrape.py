"""Reading a ``/metrics`` page the way Prometheus does (``prometheus_client.parser``)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


class Scrape:
    """The samples of one scrape, looked up by sample name and (a subset of) labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, Labels], float] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the sample with exactly these labels, or None if it is absent."""
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, got), v in self.samples.items() if n == name and wanted <= got)

    def series(self, name: str, label: str, **labels: str) -> Mapping[str, float]:
        """``{value of label: sample value}`` over the samples of ``name`` matching ``labels``."""
        wanted = set(labels.items())
        return {
            dict(got)[label]: v
            for (n, got), v in self.samples.items()
            if n == name and wanted <= got and label in dict(got)
        }


def scrape(client: httpx.Client) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)
