"""``i3dmtn alerts``: the consumer side of the events (terminal lines, ``--exec``, snapshots, a live page).

Modules: :mod:`.consumer` (subscriptions, routing, de-duplication), :mod:`.formatting` (one readable line),
:mod:`.actions` (printer, ``--exec`` runner, snapshot saver), :mod:`.state` and :mod:`.web` (the live
page), :mod:`.command` (the CLI). Needs paho-mqtt and the standard library only: never torch.
"""
