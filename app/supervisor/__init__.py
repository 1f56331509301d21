"""The supervisor's view: the extension board, callbacks, a call's timeline."""
