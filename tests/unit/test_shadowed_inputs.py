"""shadowed_inputs: the variables the playbooks' vars files set, found in an inventory, each with the globals to set
instead, read from the vars files themselves."""

from pathlib import Path

import yaml

from ansible_collections.netlab.lab.plugins.lookup import shadowed_inputs

VARS = Path(__file__).resolve().parents[2] / "playbooks" / "vars"
ROLE_INPUTS = yaml.safe_load((VARS / "role_inputs.yml").read_text())
PROFILES = yaml.safe_load((VARS / "profiles.yml").read_text())


def test_each_derived_input_names_the_globals_it_comes_from():
    found = shadowed_inputs.derived_from(ROLE_INPUTS | PROFILES)
    # Through netlab_lab_hosts: the pair is chosen on two machines where they are known.
    assert found["bench_nodes"] == ["netlab_bench_nodes", "netlab_node_hosts", "netlab_provider"]
    assert found["bench_kubeconfig"] == ["netlab_kubeconfig"]
    assert found["bench_transport"] == ["netlab_cluster"]
    # Through the inputs it is derived from: bench_nodes, netlab_profile, netlab_node_address.
    assert found["service_scale_nodes"] == ["netlab_bench_nodes", "netlab_node_hosts", "netlab_provider"]
    assert found["bench_node_hosts"] == ["netlab_node_hosts", "netlab_provider"]
    assert found["rke2_profile_settings"] == ["cni", "cni_profile"]
    assert found["rke2_node_ip"] == ["netlab_node_ip"]
    # profiles.yml's tables are set, not derived.
    assert found["netlab_profiles_extra"] == []


def test_every_input_the_playbooks_derive_has_a_global_to_set():
    found = shadowed_inputs.derived_from(ROLE_INPUTS | PROFILES)
    assert [name for name in ROLE_INPUTS if not found[name]] == []


def test_plugins_are_no_globals_and_a_cycle_ends():
    found = shadowed_inputs.derived_from({"a": "{{ b | netlab.lab.netlab_plan }}", "b": "{{ a ~ netlab_x }}"})
    assert found == {"a": ["netlab_x"], "b": ["netlab_x"]}


def test_an_input_set_for_any_host_is_found_unless_it_is_an_extra_var():
    host_vars = {"localhost": {"bench_nodes", "bench_transport", "netlab_provider"},
                 "agent-1": {"bench_nodes", "bench_transport", "rke2_cni"}}
    found = shadowed_inputs.shadowed(ROLE_INPUTS, host_vars, extra_vars=["bench_transport"])
    assert found == [
        {"name": "rke2_cni", "derived_from": ["cni"], "hosts": ["agent-1"]},
        {"name": "bench_nodes", "derived_from": ["netlab_bench_nodes", "netlab_node_hosts", "netlab_provider"],
         "hosts": ["localhost", "agent-1"]},
    ]


def test_the_globals_themselves_are_not_refused():
    assert shadowed_inputs.shadowed(ROLE_INPUTS, {"localhost": {"netlab_bench_nodes", "cni"}}, []) == []
