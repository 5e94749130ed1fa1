#!/bin/bash
# A LabLink setupScript: a conda environment for a Python tutorial.
#
# LabLink runs it as root once on each VM's first boot, before the VM joins the pool, with
# LABLINK_VM_NAME and LABLINK_DESKTOP_USER set; it tries it up to three times and its exit
# status decides. Everything it prints is in the VM's log on the admin dashboard, so print
# what helps and never a secret. Written to be run again safely (a retry or a re-run).
#
# Try it first on your machine: npm start -- --vms 1 --setup-script docs/examples/python-tutorial-setup.sh
set -euo pipefail

ENV_NAME=tutorial
PACKAGES=(python=3.12 numpy pandas matplotlib jupyterlab)
# On a VM (which has a desktop user) conda goes to /opt/conda; tried locally, into the simulated VM's own folder.
if [ -n "${LABLINK_DESKTOP_USER:-}" ]; then CONDA_DIR=/opt/conda; else CONDA_DIR=$PWD/conda; fi

if [ ! -x "$CONDA_DIR/bin/conda" ]; then
  echo "Installing Miniforge into $CONDA_DIR"
  curl -fsSL --retry 3 -o miniforge.sh "https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-Linux-$(uname -m).sh"
  bash miniforge.sh -b -p "$CONDA_DIR"
  rm -f miniforge.sh
fi

if [ -d "$CONDA_DIR/envs/$ENV_NAME" ]; then
  echo "Updating the $ENV_NAME environment"
  "$CONDA_DIR/bin/conda" install --yes --quiet --name "$ENV_NAME" "${PACKAGES[@]}"
else
  echo "Creating the $ENV_NAME environment"
  "$CONDA_DIR/bin/conda" create --yes --quiet --name "$ENV_NAME" "${PACKAGES[@]}"
fi

# On a VM: the participant's terminals open in the environment. Written as the desktop user, never
# as root: root writing into a home the user controls would follow a link they put there.
if [ -n "${LABLINK_DESKTOP_USER:-}" ]; then
  line="source $CONDA_DIR/bin/activate $ENV_NAME"
  runuser -u "$LABLINK_DESKTOP_USER" -- sh -c 'cd && { grep -qxF "$1" .bashrc 2>/dev/null || echo "$1" >> .bashrc; }' sh "$line"
fi
echo "The $ENV_NAME environment is ready: $("$CONDA_DIR/envs/$ENV_NAME/bin/python" --version)"
