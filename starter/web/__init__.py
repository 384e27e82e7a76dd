"""The approval inbox (`orderflow serve`): a small server-rendered site for approvers."""
