"""The papers whose findings the claims test."""
from harness.spec import Paper

KIM2024 = Paper(
    key="kim2024",
    citation="Kim, G., Kim, D.-K. & Jeong, H. (2024). Spontaneous emergence of rudimentary music detectors "
             "in deep neural networks. Nature Communications 15:148.",
    doi="10.1038/s41467-023-44516-0",
)
GRASSE2026 = Paper(
    key="grasse2026",
    citation="Grasse, L. & Tata, M. (2026). Musical Training, but not Mere Exposure to Music, Drives the "
             "Emergence of Chroma Equivalence in Artificial Neural Networks. arXiv:2602.18635.",
    url="https://arxiv.org/abs/2602.18635",
    note="abstract only: the RSA design and every threshold are ours",
)
KONG2025 = Paper(
    key="kong2025",
    citation="Kong, Meseguer-Brocal, Lostanlen, Lagrange & Hennequin (2025). Emergent musical properties of "
             "a transformer under contrastive self-supervised learning. ISMIR 2025, arXiv:2506.23873.",
    url="https://arxiv.org/abs/2506.23873",
    note="abstract only: the operationalisation and every threshold are ours",
)
PAPERS = {p.key: p for p in (KIM2024, GRASSE2026, KONG2025)}
