"""RESULTS.md rewrites: the hand-written analysis is kept, the generated sections are replaced."""

from __future__ import annotations

from benchmarks.run import ANALYSIS_MARK, Config, Results, Row, kept_analysis, write_results


def _results(figure: str, errors: list[str] | None = None) -> Results:
    res = Results(errors=errors or [])
    res.rows.append(Row(1, "Throughput", figure, ">= 0.9 of bare", True, 5))
    res.details = {"row1": {"figure": figure}}
    return res


def test_a_rewrite_keeps_the_analysis_once_and_replaces_the_raw_figures(tmp_path):
    path = tmp_path / "RESULTS.md"
    cfg = Config.make(quick=False)
    write_results(path, _results("0.91", errors=["boom"]), cfg, 60.0, [])
    first = path.read_text(encoding="utf-8")
    assert ANALYSIS_MARK not in first  # nothing written by hand yet
    path.write_text(first.replace("## Errors", f"{ANALYSIS_MARK}\n## Reading\n\nBy hand.\n\n## Errors"))

    write_results(path, _results("0.97"), cfg, 60.0, [])
    write_results(path, _results("0.98"), cfg, 60.0, [])
    text = path.read_text(encoding="utf-8")

    assert text.count(ANALYSIS_MARK) == 1
    assert text.count("By hand.") == 1
    assert text.count("## Raw figures") == 1
    assert "## Errors" not in text and "boom" not in text  # the old run's errors went with it
    assert '"figure": "0.98"' in text and '"figure": "0.91"' not in text
    assert text.index("By hand.") < text.index("## Raw figures")


def test_kept_analysis_stops_at_the_generated_sections():
    old = f"# Results\n\n| table |\n\n{ANALYSIS_MARK}\n## Reading\n\ntext\n\n## Raw figures\n\n```json\n{{}}\n```\n"
    assert kept_analysis(old) == f"{ANALYSIS_MARK}\n## Reading\n\ntext\n"
    assert kept_analysis("# Results without analysis\n\n## Raw figures\n") == ""
