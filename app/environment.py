"""Names launch.py and the app share. Standard library only: launch.py imports this before anything is installed."""

INSIDE_FLAG = "PHI3PC_IN_VENV"  # set by launch.py when it re-runs itself inside the app's environment
SETUP_SECONDS = "PHI3PC_SETUP_SECONDS"  # how long launch.py's set-up took, for the first progress line
