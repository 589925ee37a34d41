"""One module per tab of the page: each `build` lays out its tab and returns its components, and its `wire` (beside
it) connects them to what they do. webui/page.py puts them together."""
