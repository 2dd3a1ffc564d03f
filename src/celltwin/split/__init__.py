"""celltwin.split"""
