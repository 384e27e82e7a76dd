"""The single wiring point: settings, data converter, task queue, workflows and activities."""
