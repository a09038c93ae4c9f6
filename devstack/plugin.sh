#!/bin/bash
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

# plugin.sh - devstack plugin of ipa-cinder
#
# The conductor half goes into Ironic's environment, the agent half into
# the IPA ramdisk the plugin builds. Phases (devstack runs the plugins of a
# phase in the order of the enable_plugin lines, Ironic's first):
#
#   stack pre-install  check the plugin order and that Cinder is enabled
#   stack install      ipa-cinder[conductor]; the IPA ramdisk with the
#                      elements/ipa-cinder element, before Ironic uploads
#                      it in "extra"
#   stack post-config  check ironic.conf got the hardware types and the
#                      deploy interface from the IRONIC_* settings
#   stack extra        let the nodes reach the iSCSI portal
#   stack test-config  tempest; the boot-from-volume exercise
#   unstack            remove the iSCSI firewall rule
#   clean              remove the ramdisk the plugin built
#
# Ironic's devstack library (devstack/lib/ironic, sourced by Ironic's
# plugin.sh in every phase before this one) provides IRONIC_* variables
# and helpers used here: install_diskimage_builder, IRONIC_DIB_*,
# IRONIC_PYTHON_AGENT_*, IRONIC_CMD, IRONIC_HTTP_*.

IPA_CINDER_ISCSI_PORT=${ISCSI_SERVICE_PORT:-3260}

function ipa_cinder_check_prerequisites {
    # Ironic's plugin must run first in every phase: its library defines
    # what this one uses, and its settings must be extended, not reset.
    local plugin
    local ironic_first=False
    for plugin in ${DEVSTACK_PLUGINS//,/ }; do
        if [[ "$plugin" == ironic ]]; then
            ironic_first=True
        elif [[ "$plugin" == ipa-cinder ]]; then
            break
        fi
    done
    if [[ "$ironic_first" != "True" ]]; then
        die $LINENO "enable_plugin ironic must come before" \
            "enable_plugin ipa-cinder in local.conf" \
            "(plugins: ${DEVSTACK_PLUGINS})"
    fi
    if ! is_service_enabled c-vol; then
        warn $LINENO "Cinder (c-vol) is not enabled on this host:" \
            "cinder-agent nodes need a Cinder to boot from"
    fi
}

function install_ipa_cinder {
    # The conductor half, into the environment ironic-conductor runs in.
    setup_develop "$IPA_CINDER_DIR" conductor
}

# _ipa_cinder_wheel <directory>
# Builds ipa-cinder's wheel from the checkout under test into <directory>
# and prints its path: the element installs that wheel in the ramdisk.
function _ipa_cinder_wheel {
    local wheel_dir=$1
    local wheels
    "${PYTHON:-python3}" -m pip wheel --quiet --no-deps \
        --wheel-dir "$wheel_dir" "$IPA_CINDER_DIR" >&2 || return 1
    wheels=("$wheel_dir"/ipa_cinder-*.whl)
    [[ -f "${wheels[0]}" ]] || return 1
    echo "${wheels[0]}"
}

# build_ipa_cinder_ramdisk <kernel path> <ramdisk path>
# Ironic's own build (build_ipa_dib_ramdisk) gives diskimage-builder an
# ELEMENTS_PATH of its own, so this builds the same image with the
# ipa-cinder element added, from the same sources and settings.
function build_ipa_cinder_ramdisk {
    local kernel_path=$1
    local ramdisk_path=$2
    local tempdir
    local wheel

    if [[ -e "$kernel_path" && -e "$ramdisk_path" ]]; then
        echo "IPA ramdisk with ipa-cinder already built: $ramdisk_path" \
            "(remove it and $kernel_path to build it again)"
        return 0
    fi
    if [[ "$OFFLINE" == "True" ]]; then
        die $LINENO "$ramdisk_path does not exist and cannot be built in" \
            "OFFLINE mode"
    fi
    if ! type -P disk-image-create > /dev/null; then
        install_diskimage_builder
    fi
    git_clone "$IRONIC_PYTHON_AGENT_BUILDER_REPO" \
        "$IRONIC_PYTHON_AGENT_BUILDER_DIR" \
        "$IRONIC_PYTHON_AGENT_BUILDER_BRANCH"

    tempdir=$(mktemp -d --tmpdir="$DEST")
    wheel=$(_ipa_cinder_wheel "$tempdir/wheel")
    die_if_not_set $LINENO wheel "no ipa-cinder wheel built from" \
        "$IPA_CINDER_DIR"
    echo "Building IPA ramdisk with ipa-cinder: $IRONIC_DIB_RAMDISK_OPTIONS" \
        "$IPA_CINDER_RAMDISK_ELEMENTS ($wheel)"
    # IPA from the checkout the job prepared, when there is one, as in
    # Ironic's own build; otherwise diskimage-builder fetches it.
    if [[ -d "$IRONIC_PYTHON_AGENT_DIR" ]]; then
        export DIB_REPOLOCATION_ironic_python_agent=$IRONIC_PYTHON_AGENT_DIR
        export DIB_REPOREF_ironic_python_agent=$TARGET_BRANCH
    fi
    # The options hold the distribution and possibly more elements: they
    # are split into words on purpose.
    local elements_path
    elements_path=$IPA_CINDER_DIR/elements
    elements_path+=:$IRONIC_PYTHON_AGENT_BUILDER_DIR/dib
    # shellcheck disable=SC2086
    ELEMENTS_PATH=$elements_path \
        DIB_CLOUD_INIT_DATASOURCES="ConfigDrive,openstack" \
        DIB_DHCP_TIMEOUT=$IRONIC_DIB_DHCP_TIMEOUT \
        DIB_RELEASE=$IRONIC_DIB_RAMDISK_RELEASE \
        DIB_REPOLOCATION_requirements="$DEST/requirements" \
        DIB_REPOREF_requirements=$TARGET_BRANCH \
        DIB_IPA_CINDER_WHEEL=$wheel \
        disk-image-create $IRONIC_DIB_RAMDISK_OPTIONS -x \
        -o "$tempdir/ipa-cinder" \
        ironic-python-agent-ramdisk $IPA_CINDER_RAMDISK_ELEMENTS
    chmod -R +r "$tempdir"
    mv "$tempdir/ipa-cinder.kernel" "$kernel_path"
    mv "$tempdir/ipa-cinder.initramfs" "$ramdisk_path"
    rm -rf "$tempdir"
}

function ipa_cinder_check_ironic_conf {
    # Ironic's configure step wrote ironic.conf from the IRONIC_* lists
    # that devstack/settings extended; a local.conf that reset them after
    # the settings were read would leave the plugin unusable.
    local option
    local value
    local wanted
    for option in enabled_hardware_types enabled_deploy_interfaces; do
        value=$(iniget "$IRONIC_CONF_FILE" DEFAULT "$option")
        if [[ "$option" == enabled_hardware_types ]]; then
            wanted=$IPA_CINDER_HARDWARE_TYPES
        else
            wanted=$IPA_CINDER_DEPLOY_INTERFACE
        fi
        if [[ "$(_ipa_cinder_list_add "$value" "$wanted")" != "$value" ]]; then
            die $LINENO "$IRONIC_CONF_FILE: [DEFAULT] $option = $value" \
                "lacks $wanted"
        fi
    done
}

function _ipa_cinder_iscsi_rule {
    # Ironic opens the iSCSI portal to the nodes only for its own "cinder"
    # storage interface; cinder-agent nodes (storage interface noop) log
    # in from the ramdisk and from iPXE too. The same rule as Ironic's.
    local action=$1
    sudo iptables "$action" INPUT -d "$HOST_IP" -p tcp \
        --dport "$IPA_CINDER_ISCSI_PORT" -s "$FLOATING_RANGE" -j ACCEPT
}

function configure_ipa_cinder_network {
    if [[ "${IRONIC_STORAGE_INTERFACE:-}" != "cinder" ]]; then
        _ipa_cinder_iscsi_rule -I || true
    fi
}

function cleanup_ipa_cinder_network {
    if [[ "${IRONIC_STORAGE_INTERFACE:-}" != "cinder" ]]; then
        _ipa_cinder_iscsi_rule -D 2> /dev/null || true
    fi
}

function configure_ipa_cinder_tempest {
    # Ironic's test-config (run before this one) wrote its lists; make
    # sure a tempest run sees the cinder hardware types and the deploy
    # interface, and volumes large enough for the whole-disk image.
    local value
    value=$(iniget "$TEMPEST_CONFIG" baremetal enabled_hardware_types)
    iniset "$TEMPEST_CONFIG" baremetal enabled_hardware_types \
        "$(_ipa_cinder_list_add "$value" "$IPA_CINDER_HARDWARE_TYPES")"
    value=$(iniget "$TEMPEST_CONFIG" baremetal enabled_deploy_interfaces)
    iniset "$TEMPEST_CONFIG" baremetal enabled_deploy_interfaces \
        "$(_ipa_cinder_list_add "$value" "$IPA_CINDER_DEPLOY_INTERFACE")"
    value=$(iniget "$TEMPEST_CONFIG" volume volume_size)
    if [[ -z "$value" || "$value" -lt "$IPA_CINDER_BFV_VOLUME_SIZE" ]]; then
        iniset "$TEMPEST_CONFIG" volume volume_size \
            "$IPA_CINDER_BFV_VOLUME_SIZE"
    fi
}

# _ipa_cinder_wait_for <what> <timeout s> <wanted> <failed,states> <cmd...>
# Runs <cmd...> every 10 s until it prints <wanted>; dies when it prints
# one of the failed states or when the time is up.
function _ipa_cinder_wait_for {
    local what=$1
    local timeout=$2
    local wanted=$3
    local failed=$4
    shift 4
    local state
    local deadline
    deadline=$((SECONDS + timeout))
    while true; do
        state=$("$@")
        if [[ "$state" == "$wanted" ]]; then
            return 0
        fi
        if [[ ",$failed," == *",$state,"* ]]; then
            die $LINENO "$what: $state instead of $wanted"
        fi
        if [[ $SECONDS -ge $deadline ]]; then
            die $LINENO "$what: still $state after $timeout s"
        fi
        sleep 10
    done
}

# _ipa_cinder_bfv_driver <hardware type>
# Prints the cinder hardware type that drives the same hardware (nothing
# when there is none).
function _ipa_cinder_bfv_driver {
    case $1 in
        ipmi|cinder-ipmi) echo cinder-ipmi ;;
        redfish|cinder-redfish) echo cinder-redfish ;;
        fake-hardware) echo fake-hardware ;;
    esac
}

function ipa_cinder_bfv_exercise {
    # A boot-from-volume deploy of one available node through the Ironic
    # and Cinder APIs, without Nova: the image is written onto a Cinder
    # volume by the agent, the node boots it, the undeploy deletes the
    # attachment. The node gets its driver and interfaces back at the end.
    local bm="openstack --os-cloud $IRONIC_OS_CLOUD baremetal"
    local cinder="openstack --os-cloud devstack-admin"
    local node
    local driver
    local bfv_driver
    local deploy_interface
    local boot_interface
    local image_name
    local image_url
    local checksum
    local volume
    local target
    local status

    node=$($bm node list --provision-state available -f value -c UUID \
        | head -n 1)
    die_if_not_set $LINENO node "boot from volume: no available node"
    driver=$($bm node show "$node" -f value -c driver)
    deploy_interface=$($bm node show "$node" -f value -c deploy_interface)
    boot_interface=$($bm node show "$node" -f value -c boot_interface)
    bfv_driver=$(_ipa_cinder_bfv_driver "$driver")
    die_if_not_set $LINENO bfv_driver "boot from volume: node $node has" \
        "hardware type $driver, which has no cinder variant"

    # The whole-disk image Ironic serves over HTTP when Nova is off.
    image_name=$IRONIC_WHOLEDISK_IMAGE_NAME
    if [[ ! "$image_name" =~ \.img$ && ! -f "$FILES/$image_name" ]]; then
        image_name=$image_name.img
    fi
    image_url=http://$IRONIC_HTTP_SERVER:$IRONIC_HTTP_PORT/$image_name
    checksum=$(sha256sum "$FILES/$image_name" | cut -d ' ' -f 1)

    volume=$($cinder volume create --size "$IPA_CINDER_BFV_VOLUME_SIZE" \
        ${IPA_CINDER_BFV_VOLUME_TYPE:+--type $IPA_CINDER_BFV_VOLUME_TYPE} \
        "ipa-cinder-bfv-$node" -f value -c id)
    die_if_not_set $LINENO volume "boot from volume: no volume created"
    _ipa_cinder_wait_for "volume $volume" 300 available error \
        $cinder volume show "$volume" -f value -c status

    $bm node set "$node" --driver "$bfv_driver" \
        --deploy-interface "$IPA_CINDER_DEPLOY_INTERFACE" \
        --boot-interface ipxe \
        --property capabilities=iscsi_boot:true \
        --instance-info image_source="$image_url" \
        --instance-info image_checksum="$checksum"
    target=$($bm volume target create --node "$node" --type iscsi \
        --boot-index 0 --volume-id "$volume" -f value -c uuid)
    die_if_not_set $LINENO target "boot from volume: no volume target"

    echo_summary "ipa-cinder: deploying node $node onto volume $volume"
    $bm node deploy "$node"
    _ipa_cinder_wait_for "deploy of node $node" "$IPA_CINDER_BFV_TIMEOUT" \
        active "deploy failed,error" \
        $bm node show "$node" -f value -c provision_state
    status=$($cinder volume show "$volume" -f value -c status)
    if [[ "$status" != "in-use" ]]; then
        die $LINENO "volume $volume is $status after the deploy"
    fi

    echo_summary "ipa-cinder: undeploying node $node"
    $bm node undeploy "$node"
    _ipa_cinder_wait_for "undeploy of node $node" \
        "$IPA_CINDER_BFV_TIMEOUT" available \
        "error,clean failed,manageable" \
        $bm node show "$node" -f value -c provision_state
    # The undeploy deleted the node's attachment: nothing leaked.
    _ipa_cinder_wait_for "volume $volume" 300 available error \
        $cinder volume show "$volume" -f value -c status

    $bm volume target delete "$target"
    $bm node set "$node" --driver "$driver" \
        --deploy-interface "$deploy_interface" \
        --boot-interface "$boot_interface"
    $bm node unset "$node" --instance-info image_source \
        --instance-info image_checksum
    $cinder volume delete "$volume"
}

function cleanup_ipa_cinder {
    # clean.sh does not load the plugins' settings: the default names.
    rm -f "${IPA_CINDER_DEPLOY_KERNEL:-$FILES/ir-deploy-ipa-cinder.kernel}" \
        "${IPA_CINDER_DEPLOY_RAMDISK:-$FILES/ir-deploy-ipa-cinder.initramfs}"
}

if is_service_enabled ir-api ir-cond; then
    if [[ "$1" == "stack" ]]; then
        if [[ "$2" == "pre-install" ]]; then
            ipa_cinder_check_prerequisites

        elif [[ "$2" == "install" ]]; then
            echo_summary "Installing ipa-cinder"
            install_ipa_cinder
            if [[ "$IPA_CINDER_BUILD_RAMDISK" == "True" \
                    && "$HOST_TOPOLOGY_ROLE" != "subnode" ]]; then
                echo_summary "Building the IPA ramdisk with ipa-cinder"
                build_ipa_cinder_ramdisk "$IPA_CINDER_DEPLOY_KERNEL" \
                    "$IPA_CINDER_DEPLOY_RAMDISK"
            fi

        elif [[ "$2" == "post-config" ]]; then
            echo_summary "Checking Ironic's configuration for ipa-cinder"
            ipa_cinder_check_ironic_conf

        elif [[ "$2" == "extra" ]]; then
            echo_summary "Opening the iSCSI portal to cinder-agent nodes"
            configure_ipa_cinder_network

        elif [[ "$2" == "test-config" ]]; then
            if is_service_enabled tempest; then
                echo_summary "Configuring tempest for ipa-cinder"
                configure_ipa_cinder_tempest
            fi
            if [[ "$IPA_CINDER_BFV_EXERCISE" == "True" ]]; then
                echo_summary "ipa-cinder boot-from-volume exercise"
                ipa_cinder_bfv_exercise
            fi
        fi
    fi
fi

# Undoing is harmless where nothing was done, and clean.sh runs without
# the settings that enable Ironic's services: not gated.
if [[ "$1" == "unstack" ]]; then
    cleanup_ipa_cinder_network
fi

if [[ "$1" == "clean" ]]; then
    cleanup_ipa_cinder
fi
