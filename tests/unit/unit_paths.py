"""Where the unit tests find the checkout, whatever their depth under tests/unit."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
