"""celltwin.models"""
