from pathlib import Path

from topups.config import PACKAGED_SEED
from topups.docs import render
from topups.seed import load_seed

DOCS = Path(__file__).resolve().parents[3] / "docs" / "programmes.md"


def test_docs_are_generated_from_the_current_seed() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(), "run: python -m topups.docs > docs/programmes.md"


def test_the_docs_show_the_domain_rates() -> None:
    text = render()

    assert "| Phnom Penh | L1 | 120,000 | 52,000 | 40,000 |" in text
    assert "| rural | L2 | 81,300 | 20,000 | 0 |" in text
    assert "400,000 per baby" in text


def test_seed_is_ordered_by_code_then_version_and_leaves_examples_out() -> None:
    seed = load_seed([PACKAGED_SEED])

    assert [(p.code, p.version) for p in seed] == [("COVID19_CT", 1), ("FAMILY_PACKAGE", 1), ("PWYC", 1)]
