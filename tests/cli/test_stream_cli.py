"""``asr stream``: a file to a running ``asr serve``, partial and final results printed as they come."""

from __future__ import annotations

import json

from asr.cli.serve import stream_main
from asr.inference.limits import Limits
from tests.inference.test_serve import Running, audio_file, lc_model  # noqa: F401 - fixtures used by name


def test_stream_prints_partials_then_the_final_and_exits_0(lc_model, audio_file, capsys):  # noqa: F811
    srv = Running(lc_model, Limits())
    try:
        url = srv.url.replace("http", "ws") + "/stream"
        assert stream_main([str(audio_file), "--url", url, "speed=0"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[-1].startswith("final: ") and "(confidence 0." in lines[-1]
        assert sum(line.startswith("partial: ") for line in lines) >= 2
        assert stream_main([f"file={audio_file}", f"url={url}", "speed=0", "events=true"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert events[0]["type"] == "ready" and events[-1]["type"] == "final" and events[-1]["end_of_stream"]
    finally:
        srv.close()


def test_stream_to_no_server_is_one_error_line(audio_file, capsys):  # noqa: F811
    assert stream_main([f"file={audio_file}", "url=ws://127.0.0.1:9/stream"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot stream to ws://127.0.0.1:9/stream") and "asr serve running" in err
