"""Using a trained model: an ASE calculator, geometry optimisation and NVE molecular dynamics.

The calculator is mace-torch's own ``MACECalculator`` around the model rebuilt by
:func:`acecourse.training.trainer.load_trained_model`.  Molecular dynamics uses ASE's velocity
Verlet integrator; in the microcanonical (NVE) ensemble the total energy is conserved by the exact
dynamics, so its drift measures the integrator's error and the smoothness of the potential.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS
from tqdm.auto import tqdm

from acecourse.training.trainer import git_commit, load_trained_model


def mace_calculator(model_path: str | os.PathLike, dtype: str = "float64"):
    """mace-torch's ASE calculator for a trained model of this course (CPU)."""
    from mace.calculators import MACECalculator

    model = load_trained_model(model_path, dtype=dtype)
    return MACECalculator(models=model, device="cpu", default_dtype=dtype)


def relax(atoms: Atoms, calculator, fmax: float = 0.01, steps: int = 200) -> dict:
    """BFGS geometry optimisation until the largest force on an atom is below ``fmax`` (eV/Å).

    ASE's criterion, as here: the Euclidean norm of each atom's force vector, not each
    component.  Returns the relaxed atoms, the energy before the first step and after every step
    (``steps + 1`` values, eV), the final largest force norm, whether it converged, and the
    number of steps.
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    energies: list[float] = []
    optimizer = BFGS(atoms, logfile=None)
    # ASE calls observers once before the first step and once after every step
    optimizer.attach(lambda: energies.append(atoms.get_potential_energy()))
    converged = optimizer.run(fmax=fmax, steps=steps)
    return {
        "atoms": atoms,
        "energies_eV": np.array(energies),
        "max_force_eV_per_A": float(np.linalg.norm(atoms.get_forces(), axis=1).max()),
        "converged": bool(converged),
        "steps": optimizer.get_number_of_steps(),
    }


def run_nve(
    atoms: Atoms,
    calculator,
    n_steps: int,
    timestep_fs: float = 0.5,
    temperature_K: float = 300.0,
    seed: int = 0,
    every: int = 1,
    progress: bool = True,
) -> dict[str, np.ndarray | float]:
    """NVE dynamics from Maxwell-Boltzmann velocities at ``temperature_K``.

    Returns time (fs), potential, kinetic and total energy (eV), temperature (K) and positions
    (Å, shape ``(n_records, n_atoms, 3)``) of every ``every``-th step, the start included, and the
    drift of the total energy: the slope of a linear fit, in meV per atom per picosecond.
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    # ASE 3.29's name for MaxwellBoltzmannDistribution (deprecated there; same draws)
    thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    ZeroRotation(atoms)
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    rows, positions = [], []

    def record() -> None:
        time_fs = dynamics.get_number_of_steps() * timestep_fs
        e_pot, e_kin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        rows.append((time_fs, e_pot, e_kin, atoms.get_temperature()))
        positions.append(atoms.get_positions())  # a copy: ASE returns one

    dynamics.attach(record, interval=every)
    with tqdm(total=n_steps, desc="MD steps", disable=not progress) as bar:
        dynamics.attach(lambda: bar.update(1), interval=1)
        dynamics.run(n_steps)
    time_fs, e_pot, e_kin, temperature = np.array(rows).T
    e_tot = e_pot + e_kin
    slope = np.polyfit(time_fs / 1000.0, e_tot, 1)[0]  # eV per ps
    return {
        "time_fs": time_fs,
        "potential_energy_eV": e_pot,
        "kinetic_energy_eV": e_kin,
        "total_energy_eV": e_tot,
        "temperature_K": temperature,
        "positions_A": np.array(positions),
        "drift_meV_per_atom_per_ps": float(slope * 1000.0 / len(atoms)),
        "total_energy_std_meV_per_atom": float(np.std(e_tot) * 1000.0 / len(atoms)),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m acecourse.training.md MODEL OUT.json --steps N``: NVE run written as JSON.

    The JSON holds :func:`run_nve`'s records (time, energies, ``temperature_K`` per record),
    the drift and fluctuation, and the run's parameters (``start_temperature_K`` is that of the
    initial Maxwell-Boltzmann velocities).  Files written before this key existed stored the
    start temperature under ``temperature_K``, replacing the trajectory's temperatures; compute
    those from ``kinetic_energy_eV`` (``2 E_kin / (3 N k_B)``, as ASE does).
    """
    import argparse

    from acecourse.data.rmd17 import load_rmd17_ethanol

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model", help="a run's model.pt.gz")
    parser.add_argument("out", help="output JSON")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = parser.parse_args(argv)
    if not Path(args.model).is_file():
        parser.exit(2, f"error: model file {args.model} not found\n")
    for name, value, ok in (
        ("--steps", args.steps, args.steps >= 2),
        ("--every", args.every, 1 <= args.every <= args.steps // 2),
        ("--timestep-fs", args.timestep_fs, 0 < args.timestep_fs < 10),
        ("--temperature", args.temperature, 0 <= args.temperature < 1e5),
    ):
        if not ok:
            parser.exit(
                2,
                f"error: {name} {value} is out of range (steps >= 2, 1 <= every <= steps/2 so "
                "that the drift fit has points, 0 < timestep < 10 fs, temperature >= 0 K)\n",
            )
    torch.set_default_dtype(getattr(torch, args.dtype))
    start = load_rmd17_ethanol("test", indices=[0])[0]
    t0 = time.perf_counter()
    result = run_nve(
        start,
        mace_calculator(args.model, args.dtype),
        args.steps,
        args.timestep_fs,
        args.temperature,
        every=args.every,
    )
    payload = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    payload.update(  # "temperature_K" stays the trajectory's temperature (K), one per record
        model=str(args.model),
        steps=args.steps,
        timestep_fs=args.timestep_fs,
        start_temperature_K=args.temperature,
        dtype=args.dtype,
        start="rMD17 ethanol test frame 0",
        command="python -m acecourse.training.md "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        git_commit=git_commit(),
        torch_threads=torch.get_num_threads(),
        wall_time_s=time.perf_counter() - t0,
    )
    Path(args.out).write_text(json.dumps(payload) + "\n")
    print(f"drift {result['drift_meV_per_atom_per_ps']:.4f} meV/atom/ps over {args.steps} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
