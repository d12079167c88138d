"""``i3dmtn alerts``: the consumer side of the events (terminal lines, ``--exec``, snapshots, clips, a live
page with reviews).

Modules: :mod:`.consumer` (subscriptions, routing, de-duplication), :mod:`.connection` (the MQTT connection
that subscribes on every connect), :mod:`.formatting` (one readable line), :mod:`.actions` (printer,
``--exec`` runner, snapshot saver), :mod:`.clip_fetcher` (the events' clips, checked), :mod:`.review_store`
(the watcher's SQLite database), :mod:`.state`, :mod:`.reviewing`, :mod:`.web`, :mod:`.web_auth` and
:mod:`.web_files` (the live page, ``static/``), :mod:`.command` and :mod:`.sinks` (the CLI and the
sinks its options ask for).

It runs on a watcher's machine, not on the device: it reads the event schema and the MQTT settings from
``edge_runtime``, which never imports it. Needs paho-mqtt and the standard library only: never torch.
"""
