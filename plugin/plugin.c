/* placeholder until the plugin lands */
int mosquitto_onboard_placeholder(void);
int mosquitto_onboard_placeholder(void) { return 0; }
