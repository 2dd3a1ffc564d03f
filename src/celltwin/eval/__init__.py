"""celltwin.eval"""
