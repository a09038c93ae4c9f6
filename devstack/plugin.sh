#!/bin/bash
# devstack plugin of ipa-cinder: the conductor half goes into Ironic's
# environment, the agent half into the IPA ramdisk that devstack builds.

function install_ipa_cinder {
    setup_develop "$IPA_CINDER_DIR"
}

function _ipa_cinder_append_opt {
    # _ipa_cinder_append_opt <section> <option> <comma separated values>
    local section=$1 option=$2 values=$3 current
    current=$(iniget "$IRONIC_CONF_FILE" "$section" "$option")
    local value
    for value in ${values//,/ }; do
        if [[ ",$current," != *",$value,"* ]]; then
            current=${current:+$current,}$value
        fi
    done
    iniset "$IRONIC_CONF_FILE" "$section" "$option" "$current"
}

function configure_ipa_cinder {
    _ipa_cinder_append_opt DEFAULT enabled_hardware_types "$IPA_CINDER_HARDWARE_TYPES"
    _ipa_cinder_append_opt DEFAULT enabled_deploy_interfaces "$IPA_CINDER_DEPLOY_INTERFACE"
    # The agent deploys onto the volume: the storage interface stays noop.
    _ipa_cinder_append_opt DEFAULT enabled_storage_interfaces noop
    if [[ "$IPA_CINDER_RAMDISK_ELEMENT" == "True" ]]; then
        export ELEMENTS_PATH=${ELEMENTS_PATH:+$ELEMENTS_PATH:}$IPA_CINDER_DIR/devstack/elements
        export DIB_IPA_CINDER_SOURCE=$IPA_CINDER_DIR
        IRONIC_DIB_RAMDISK_OPTIONS="${IRONIC_DIB_RAMDISK_OPTIONS:-} ipa-cinder"
    fi
}

if is_service_enabled ir-api ir-cond; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing ipa-cinder"
        install_ipa_cinder
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring ipa-cinder"
        configure_ipa_cinder
    fi
fi
