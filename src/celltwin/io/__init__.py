"""celltwin.io"""
