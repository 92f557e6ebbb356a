def test_show(tiny_run, tmp_path):
    from typer.testing import CliRunner
    from pix2gan_cli.app import app
    r = CliRunner().invoke(app, ["eval", "--run", str(tiny_run), "--out", str(tmp_path / "e"), "--json", str(tmp_path / "e.json"), "--device", "cpu"], env={"COLUMNS": "150"})
    print(r.output); print((tmp_path / "e.json").read_text()[:1500])
