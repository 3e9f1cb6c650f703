from orchlib.dodo import *  # noqa: F403
