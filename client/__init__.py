"""cloudarcade.client"""
