"""The application layer: what runs the product between the domain (capabilities/, models/) and what people and
programs touch (webui/). launch.py's set-up imports only `environment` and `arguments` (standard library only).

    environment.py  launch.py's set-up: .venv, the requirements, re-running inside it; the names both sides share
    arguments.py    the command line's flags
    console.py      progress and notes on the console; the terminal made safe for any text
    serving.py      the serving queue the page and the API share: one line, one gate for the engine's slots
    running.py      the running model: current(), switch(preference, progress), close(); one lock
    commands.py     the one-shot commands: --ask, --convert, --bench, --explain, --probe
    serve.py        serving: the page and the API wired on one port, until Ctrl-C
    cli.py          the command line's dispatch: probe -> profile -> policy -> artifact -> engine -> serve or ask
"""
