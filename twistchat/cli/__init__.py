"""The twistchat-client command: parsing (commands.py), rendering (render.py), front ends (main.py)."""
