"""The (α, λ) grid of sanitizers.

``full``: the paper's 36 points, α, λ ∈ {0.1, …, 0.8} with α + λ ≤ 0.9. ``small``: 4 points spanning the
corners (for tests and the demo). ``N``: the first N points of a coarse-to-fine order of the full grid (so
that 8, 16 or 20 points still cover the trade-off space — used for Table 1). Or an explicit list
``"a1/l1,a2/l2,..."``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DysanError

STEPS = tuple(round(0.1 * i, 1) for i in range(1, 9))


@dataclass(frozen=True, order=True)
class GridPoint:
    alpha: float
    lam: float

    @property
    def name(self) -> str:
        return f"a{self.alpha:.2f}_l{self.lam:.2f}"

    @property
    def distortion_weight(self) -> float:
        return round(1.0 - self.alpha - self.lam, 6)

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "lambda": self.lam, "name": self.name}


def full_grid() -> list[GridPoint]:
    return [GridPoint(a, l) for a in STEPS for l in STEPS if a + l <= 0.9 + 1e-9]


SMALL = [GridPoint(0.1, 0.8), GridPoint(0.8, 0.1), GridPoint(0.45, 0.45), GridPoint(0.1, 0.1)]


def coarse_to_fine(points: list[GridPoint]) -> list[GridPoint]:
    """Order points so every prefix spreads over the triangle (farthest-point ordering, deterministic)."""
    rest = sorted(points)
    order = [rest.pop(rest.index(GridPoint(0.4, 0.4)) if GridPoint(0.4, 0.4) in rest else 0)]
    while rest:
        def gap(p: GridPoint) -> float:
            return min((p.alpha - q.alpha) ** 2 + (p.lam - q.lam) ** 2 for q in order)

        best = max(range(len(rest)), key=lambda i: (round(gap(rest[i]), 9), -i))
        order.append(rest.pop(best))
    return order


def parse(spec: str) -> list[GridPoint]:
    if spec == "full":
        return full_grid()
    if spec == "small":
        return list(SMALL)
    if spec.isdigit():
        n = int(spec)
        if not 1 <= n <= 36:
            raise DysanError(f"--grid {spec}: between 1 and 36 points")
        return sorted(coarse_to_fine(full_grid())[:n])
    points = []
    for item in spec.split(","):
        a, sep, l = item.partition("/")
        try:
            p = GridPoint(round(float(a), 4), round(float(l), 4))
        except ValueError:
            raise DysanError(f"--grid: {item!r} is not ALPHA/LAMBDA") from None
        if not sep or p.alpha < 0 or p.lam < 0 or p.alpha + p.lam > 1 + 1e-9:
            raise DysanError(f"--grid: {item!r} needs α, λ ≥ 0 and α + λ ≤ 1")
        points.append(p)
    if len(set(points)) != len(points):
        raise DysanError("--grid: duplicate points")
    return points
