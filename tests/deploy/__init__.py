"""Deployment files: Dockerfile, docker-compose.yml and the Helm chart, checked offline."""
