typedef int qp_placeholder;
